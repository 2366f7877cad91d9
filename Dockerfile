# Build image for ESB on Debian 12. Today it ships esbctl (levels, fit, run,
# eval, quantize); the server, worker and board agent join as they are built.
#
#   docker build -t esb .
#   docker run --rm esb levels --bits 4 --sb 2
FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN bash scripts/setup.sh

FROM debian:12-slim AS esbctl
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libprotobuf32 libabsl20220623 libdnnl2 libonnx1 libgomp1 libssl3 \
      ocl-icd-libopencl1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/client/esbctl /usr/local/bin/esbctl
ENTRYPOINT ["/usr/local/bin/esbctl"]
