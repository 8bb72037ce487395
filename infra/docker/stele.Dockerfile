# syntax=docker/dockerfile:1
#
# The `stele` binary (the sequencer) in a small Debian image, for the
# Compose set-up (infra/minio) and ECS Fargate (infra/aws). Build it from
# the repository root:
#
#   docker build -f infra/docker/stele.Dockerfile -t stele .
#   docker buildx build --platform linux/arm64 -f infra/docker/stele.Dockerfile \
#       -t ACCOUNT.dkr.ecr.REGION.amazonaws.com/stele:TAG --push .
#
# The image holds no key and no credentials: the log's key file, the S3
# credentials and the ingress secret come from the platform at run time.

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p stele-sequencer --bin stele \
    && install -m 0755 target/release/stele /usr/local/bin/stele

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed, unprivileged uid: operators give it the key file (Compose
# secrets keep the host file's owner).
RUN groupadd --system --gid 10001 stele \
    && useradd --system --uid 10001 --gid stele --home-dir /var/lib/stele \
        --shell /usr/sbin/nologin stele \
    && install -d -o stele -g stele -m 0700 /var/lib/stele
COPY --from=build /usr/local/bin/stele /usr/local/bin/stele
USER stele:stele
WORKDIR /var/lib/stele
# The data folder (log.vkey, and the key file where the platform writes
# it). Declared a volume so that Docker and Fargate mount it owned by
# stele, even with a read-only root file system.
VOLUME ["/var/lib/stele"]
# 8080: the submission API, /healthz, /metrics; 8081: the private ingress
# (only with --ingress-listen).
EXPOSE 8080 8081
ENTRYPOINT ["stele"]
CMD ["serve", "--data", "/var/lib/stele"]
