"""`dr smoke`: a post-deploy check of a running responder over its HTTP API, alert to page to resolve."""
