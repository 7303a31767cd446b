api_version = 99


def register(ctx):
    pass
