// Command goprotojson builds hashedrekord v0.0.2 Entry messages with Go's
// protobuf runtime (google.golang.org/protobuf, dynamicpb over a descriptor
// of sigstore/rekor-tiles api/proto/rekor/v2/{entry,hashedrekord,verifier}.proto
// and sigstore/protobuf-specs sigstore_common.proto), marshals them with
// protojson as rekor-tiles does (internal/server/service.go), and
// canonicalizes the result: keys sorted, no whitespace (RFC 8785 for values
// that are only objects and ASCII strings, as these are).
//
// Input on stdin: a JSON array of {"digest","content","rawBytes" (base64),
// "certificate" (bool), "keyDetails" (enum number), "algorithm" (enum
// number)}. Output: a JSON array of the canonical entries, as strings.
package main

import (
	"encoding/base64"
	"encoding/json"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/proto"
)

type input struct {
	Digest      string `json:"digest"`
	Content     string `json:"content"`
	RawBytes    string `json:"rawBytes"`
	Certificate bool   `json:"certificate"`
	KeyDetails  int32  `json:"keyDetails"`
	Algorithm   int32  `json:"algorithm"`
}

func field(name string, number int32, typ descriptorpb.FieldDescriptorProto_Type, typeName string, oneof *int32) *descriptorpb.FieldDescriptorProto {
	f := &descriptorpb.FieldDescriptorProto{
		Name:   proto.String(name),
		Number: proto.Int32(number),
		Label:  descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		Type:   typ.Enum(),
	}
	if typeName != "" {
		f.TypeName = proto.String(typeName)
	}
	if oneof != nil {
		f.OneofIndex = oneof
	}
	return f
}

func enumValues(values map[string]int32) []*descriptorpb.EnumValueDescriptorProto {
	order := []string{}
	for name := range values {
		order = append(order, name)
	}
	out := []*descriptorpb.EnumValueDescriptorProto{}
	// Zero first, as proto3 requires.
	for _, name := range order {
		if values[name] == 0 {
			out = append(out, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(name), Number: proto.Int32(0)})
		}
	}
	for _, name := range order {
		if values[name] != 0 {
			out = append(out, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(name), Number: proto.Int32(values[name])})
		}
	}
	return out
}

func descriptor() protoreflect.FileDescriptor {
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	byt := descriptorpb.FieldDescriptorProto_TYPE_BYTES
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING
	enm := descriptorpb.FieldDescriptorProto_TYPE_ENUM
	zero := int32(0)
	file := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("stele_rekor_v2.proto"),
		Package: proto.String("dev.sigstore.rekor.v2"),
		Syntax:  proto.String("proto3"),
		EnumType: []*descriptorpb.EnumDescriptorProto{
			{Name: proto.String("HashAlgorithm"), Value: enumValues(map[string]int32{
				"HASH_ALGORITHM_UNSPECIFIED": 0, "SHA2_256": 1, "SHA2_384": 2, "SHA2_512": 3})},
			{Name: proto.String("PublicKeyDetails"), Value: enumValues(map[string]int32{
				"PUBLIC_KEY_DETAILS_UNSPECIFIED": 0, "PKIX_ECDSA_P256_SHA_256": 5, "PKIX_ED25519": 7,
				"PKIX_ED25519_PH": 8, "PKIX_RSA_PKCS1V15_2048_SHA256": 9, "PKIX_RSA_PKCS1V15_3072_SHA256": 10,
				"PKIX_RSA_PKCS1V15_4096_SHA256": 11, "PKIX_ECDSA_P384_SHA_384": 12, "PKIX_ECDSA_P521_SHA_512": 13})},
		},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("HashOutput"), Field: []*descriptorpb.FieldDescriptorProto{
				field("algorithm", 1, enm, ".dev.sigstore.rekor.v2.HashAlgorithm", nil),
				field("digest", 2, byt, "", nil)}},
			{Name: proto.String("PublicKey"), Field: []*descriptorpb.FieldDescriptorProto{
				field("raw_bytes", 1, byt, "", nil)}},
			{Name: proto.String("X509Certificate"), Field: []*descriptorpb.FieldDescriptorProto{
				field("raw_bytes", 1, byt, "", nil)}},
			{Name: proto.String("Verifier"), Field: []*descriptorpb.FieldDescriptorProto{
				field("public_key", 1, msg, ".dev.sigstore.rekor.v2.PublicKey", &zero),
				field("x509_certificate", 2, msg, ".dev.sigstore.rekor.v2.X509Certificate", &zero),
				field("key_details", 3, enm, ".dev.sigstore.rekor.v2.PublicKeyDetails", nil)},
				OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("verifier")}}},
			{Name: proto.String("Signature"), Field: []*descriptorpb.FieldDescriptorProto{
				field("content", 1, byt, "", nil),
				field("verifier", 2, msg, ".dev.sigstore.rekor.v2.Verifier", nil)}},
			{Name: proto.String("HashedRekordLogEntryV002"), Field: []*descriptorpb.FieldDescriptorProto{
				field("data", 1, msg, ".dev.sigstore.rekor.v2.HashOutput", nil),
				field("signature", 2, msg, ".dev.sigstore.rekor.v2.Signature", nil)}},
			{Name: proto.String("Spec"), Field: []*descriptorpb.FieldDescriptorProto{
				field("hashed_rekord_v002", 1, msg, ".dev.sigstore.rekor.v2.HashedRekordLogEntryV002", &zero)},
				OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("spec")}}},
			{Name: proto.String("Entry"), Field: []*descriptorpb.FieldDescriptorProto{
				field("kind", 1, str, "", nil),
				field("api_version", 2, str, "", nil),
				field("spec", 3, msg, ".dev.sigstore.rekor.v2.Spec", nil)}},
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		panic(err)
	}
	return fd
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func main() {
	fd := descriptor()
	messages := fd.Messages()
	newMessage := func(name string) *dynamicpb.Message {
		return dynamicpb.NewMessage(messages.ByName(protoreflect.Name(name)))
	}
	setMessage := func(parent *dynamicpb.Message, name string, child *dynamicpb.Message) {
		parent.Set(parent.Descriptor().Fields().ByName(protoreflect.Name(name)), protoreflect.ValueOfMessage(child))
	}
	set := func(m *dynamicpb.Message, name string, v protoreflect.Value) {
		m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(name)), v)
	}
	var inputs []input
	if err := json.NewDecoder(os.Stdin).Decode(&inputs); err != nil {
		panic(err)
	}
	outputs := []string{}
	for _, in := range inputs {
		digest := must(base64.StdEncoding.DecodeString(in.Digest))
		content := must(base64.StdEncoding.DecodeString(in.Content))
		raw := must(base64.StdEncoding.DecodeString(in.RawBytes))

		data := newMessage("HashOutput")
		set(data, "algorithm", protoreflect.ValueOfEnum(protoreflect.EnumNumber(in.Algorithm)))
		set(data, "digest", protoreflect.ValueOfBytes(digest))
		verifier := newMessage("Verifier")
		if in.Certificate {
			cert := newMessage("X509Certificate")
			set(cert, "raw_bytes", protoreflect.ValueOfBytes(raw))
			setMessage(verifier, "x509_certificate", cert)
		} else {
			key := newMessage("PublicKey")
			set(key, "raw_bytes", protoreflect.ValueOfBytes(raw))
			setMessage(verifier, "public_key", key)
		}
		set(verifier, "key_details", protoreflect.ValueOfEnum(protoreflect.EnumNumber(in.KeyDetails)))
		signature := newMessage("Signature")
		set(signature, "content", protoreflect.ValueOfBytes(content))
		setMessage(signature, "verifier", verifier)
		hashedRekord := newMessage("HashedRekordLogEntryV002")
		setMessage(hashedRekord, "data", data)
		setMessage(hashedRekord, "signature", signature)
		spec := newMessage("Spec")
		setMessage(spec, "hashed_rekord_v002", hashedRekord)
		entry := newMessage("Entry")
		set(entry, "kind", protoreflect.ValueOfString("hashedrekord"))
		set(entry, "api_version", protoreflect.ValueOfString("0.0.2"))
		setMessage(entry, "spec", spec)

		serialized := must(protojson.Marshal(entry))
		var value interface{}
		if err := json.Unmarshal(serialized, &value); err != nil {
			panic(err)
		}
		canonical := must(json.Marshal(value))
		outputs = append(outputs, string(canonical))
	}
	if err := json.NewEncoder(os.Stdout).Encode(outputs); err != nil {
		panic(err)
	}
}
