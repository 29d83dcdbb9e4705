"""gradjit's front end: Tensor, tracing, the op surface, transforms and the imperative API."""
