package api

import _ "embed"

// openAPI is the OpenAPI 3.0 description of the API, served on
// GET /v1/openapi.json. A test checks that it is valid JSON and describes
// every registered route.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns a copy of the OpenAPI document.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }
