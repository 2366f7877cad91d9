# ESB images on Debian 12, one target per program:
#
#   docker build --target esb-server -t esb-server .
#   docker build --target esb-worker -t esb-worker .
#   docker build --target esb-agent  -t esb-agent .
#   docker build --target esbctl     -t esbctl .
#   docker run --rm esbctl levels --bits 4 --sb 2
#
# The build stage installs scripts/packages.txt, the file scripts/setup.sh
# installs, so the image builds with exactly the README's packages. Each
# runtime target is debian:12-slim with only the shared-library packages its
# binaries link (tests/dockerfile_test.py checks them against `ldd` of the
# built binaries), runs as the unprivileged user `esb`, and those that serve
# gRPC check their health through the gRPC health service (`esbctl health`).
# deploy/compose.yaml runs them together; deploy/README.md explains.

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
COPY scripts/packages.txt /src/scripts/packages.txt
RUN apt-get update -qq \
 && sed -e 's/#.*//' /src/scripts/packages.txt \
    | xargs apt-get install -y -qq --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DESB_WERROR=ON \
 && cmake --build build -j"$(nproc)" \
      --target esb-server esb-worker esb-agent esbctl \
 && mkdir /out \
 && install -s build/server/esb-server build/worker/esb-worker \
      build/fpga_agent/esb-agent build/client/esbctl /out/

# What every runtime target shares: the user and its home, with the data,
# work and model directories under it owned by the user (a volume mounted on
# one starts with that owner).
FROM debian:12-slim AS runtime
RUN useradd --system --uid 10001 --user-group --create-home \
      --home-dir /var/lib/esb --shell /usr/sbin/nologin esb \
 && install -d -o esb -g esb /var/lib/esb/data /var/lib/esb/work \
      /var/lib/esb/models

# The job service. gRPC on 50051, metrics on 9101, jobs and blobs in
# /var/lib/esb/data.
FROM runtime AS esb-server
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libabsl20220623 libc-ares2 libc6 libcivetweb1 libgcc-s1 \
      libgrpc++1.51 libgrpc29 libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 libprotobuf32 libre2-9 libsqlite3-0 libssl3 \
      libstdc++6 zlib1g \
      libdnnl2 libgomp1 libjpeg62-turbo libonnx1 libpng16-16 \
      ocl-icd-libopencl1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/esb-server /usr/local/bin/esb-server
# esbctl for the health check (its own libraries are the second line above).
COPY --from=build /out/esbctl /usr/local/bin/esbctl
USER esb
VOLUME /var/lib/esb/data
EXPOSE 50051 9101
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/esbctl", "health", "--server", "127.0.0.1:50051"]
ENTRYPOINT ["/usr/local/bin/esb-server"]
CMD ["--listen", "0.0.0.0:50051", "--data-dir", "/var/lib/esb/data", \
     "--metrics-port", "9101"]

# A worker: leases jobs from the server named by --server. It serves no gRPC;
# its health check is that its metrics endpoint (9102) accepts a connection.
FROM runtime AS esb-worker
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libabsl20220623 libc-ares2 libc6 libcivetweb1 libdnnl2 libgcc-s1 \
      libgomp1 libgrpc++1.51 libgrpc29 libjpeg62-turbo libonnx1 \
      libpng16-16 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libprotobuf32 libre2-9 libssl3 libstdc++6 ocl-icd-libopencl1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/esb-worker /usr/local/bin/esb-worker
USER esb
VOLUME /var/lib/esb/work
EXPOSE 9102
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9102"]
ENTRYPOINT ["/usr/local/bin/esb-worker"]
CMD ["--server", "esb-server:50051", "--work-dir", "/var/lib/esb/work", \
     "--metrics-host", "0.0.0.0", "--metrics-port", "9102"]

# The board agent, sim backend by default (a ZCU102 runs it under systemd:
# deploy/systemd/). KServe v2 gRPC on 8001, metrics on 8002, models in
# /var/lib/esb/models.
FROM runtime AS esb-agent
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libabsl20220623 libc-ares2 libc6 libcivetweb1 libdnnl2 libgcc-s1 \
      libgomp1 libgrpc++1.51 libgrpc29 libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 libprotobuf32 libre2-9 libssl3 libstdc++6 \
      ocl-icd-libopencl1 zlib1g \
      libjpeg62-turbo libonnx1 libpng16-16 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/esb-agent /usr/local/bin/esb-agent
# esbctl for the health check (its own libraries are the last line above).
COPY --from=build /out/esbctl /usr/local/bin/esbctl
USER esb
VOLUME /var/lib/esb/models
EXPOSE 8001 8002
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/esbctl", "health", "--server", "127.0.0.1:8001"]
ENTRYPOINT ["/usr/local/bin/esb-agent"]
CMD ["--backend", "sim", "--listen", "0.0.0.0:8001", \
     "--model-dir", "/var/lib/esb/models", "--metrics-port", "8002"]

# The command-line client.
FROM runtime AS esbctl
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libabsl20220623 libc-ares2 libc6 libdnnl2 libgcc-s1 libgomp1 \
      libgrpc++1.51 libgrpc29 libjpeg62-turbo libonnx1 libpng16-16 \
      libprotobuf32 libre2-9 libssl3 libstdc++6 ocl-icd-libopencl1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/esbctl /usr/local/bin/esbctl
USER esb
WORKDIR /var/lib/esb
ENTRYPOINT ["/usr/local/bin/esbctl"]
