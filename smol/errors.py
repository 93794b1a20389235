"""The domain errors; the API turns each into one HTTP status."""


class SmolError(Exception):
    status_code = 400


class InvalidInput(SmolError):
    status_code = 400


class Unauthorized(SmolError):
    status_code = 401


class Forbidden(SmolError):
    status_code = 403


class NotFound(SmolError):
    status_code = 404


class Conflict(SmolError):
    status_code = 409


class TooManyRequests(SmolError):
    status_code = 429

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(SmolError):
    status_code = 503


class RangeNotSatisfiable(SmolError):
    status_code = 416

    def __init__(self, size: int):
        super().__init__("range not satisfiable")
        self.size = size
