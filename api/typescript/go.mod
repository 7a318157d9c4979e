// This folder is the TypeScript client, not Go. The go.mod marks it as a
// module of its own so that the parley module's ./... (go vet, go test,
// make test) stays out of node_modules, where some npm packages ship .go
// files.
module github.com/parley-chat/parley/api/typescript

go 1.26.8
