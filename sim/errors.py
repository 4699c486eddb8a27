"""One error type for bad input, so the command line can print one line and exit 2."""


class InputError(ValueError):
    """A spec, model, scenario or trace file is wrong.

    The message always names where (file or 'scenario'), the field, the value seen and what was expected.
    """

    def __init__(self, where: str, field: str, problem: str):
        self.where, self.field, self.problem = where, field, problem
        super().__init__(f"{where}: field '{field}': {problem}")


def pydantic_to_input_error(where: str, exc) -> InputError:
    """Turn the first pydantic validation error into one named InputError."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "<root>"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field (not in the schema; check the spelling)"
    return InputError(where, field, f"{msg}; got {shown}")
