import a_module_that_does_not_exist  # noqa: F401

api_version = 1


def register(ctx):
    pass
