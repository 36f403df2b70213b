# modelfn as a container image: one binary, with what code functions need (python3,
# bubblewrap, setpriv) and ONNX Runtime installed at build time, so a node never
# downloads at start. Build: docker build -t modelfn .
# See docs/cluster.md for running it as a node of a cluster, and the securityContext
# the function sandbox needs inside a pod.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p modelfn && strip target/release/modelfn

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv bubblewrap util-linux \
 && rm -rf /var/lib/apt/lists/*
# ONNX Runtime, the version modelfn is built against (crates/modelfn-runtime-onnx).
RUN python3 -m venv /opt/ort \
 && /opt/ort/bin/pip install --no-cache-dir onnxruntime==1.31.1 \
 && ln -s "$(ls /opt/ort/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*)" /opt/ort/libonnxruntime.so
ENV ORT_DYLIB_PATH=/opt/ort/libonnxruntime.so \
    MODELFN_DATA_DIR=/var/lib/modelfn \
    MODELFN_LISTEN=0.0.0.0:8080
COPY --from=build /src/target/release/modelfn /usr/local/bin/modelfn
EXPOSE 8080
VOLUME /var/lib/modelfn
ENTRYPOINT ["/usr/local/bin/modelfn"]
CMD ["serve"]
