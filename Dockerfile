# Parley's image: a static binary on distroless, running as a non-root user.
#   docker build --build-arg VERSION=$(git describe --tags --always) -t parley .
# The image needs PARLEY_DATABASE_URL and PARLEY_JWT_SECRET: it has no
# Postgres of its own (see docker-compose.yml).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version parley version and /healthz report, stamped at link time.
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/parley ./cmd/parley

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/parley /usr/local/bin/parley
# distroless's nonroot user (65532); nothing in the image runs as root.
USER 65532:65532
ENV PARLEY_ADDR=:8080
EXPOSE 8080
# Minimal images have no curl: parley checks itself.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/parley", "healthcheck", "http://localhost:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/parley"]
CMD ["serve"]
