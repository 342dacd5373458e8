"""An OpenAI-compatible server over any creditgym policy (`creditgym serve`).

`server` (start-up and the request handler), `http` (bounded request reading), `engine`
(batched generation with admission limits), `options` (validated request options) and
`openai_format` (the wire format).
"""
