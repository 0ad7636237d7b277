// The SDK's one error class (its own module: the prompt cache throws it too).

export class PromStackError extends Error {
  constructor(message, status = 0, type = null, details = {}) {
    super(message);
    this.name = "PromStackError";
    this.status = status;
    // The server's error class, as the Python SDK raises it: NotFound, InvalidInput,
    // MergeConflict, GateFailed, Unauthorized, Forbidden, ValidationError ...
    this.type = type;
    Object.assign(this, details);
  }
}
