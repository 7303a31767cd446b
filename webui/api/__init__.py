"""The AUTOMATIC1111-compatible REST API under /sdapi/v1, served by the same core as the UI.

Enable it with ``--api`` (beside the UI) or ``--nowebui`` (API only, port 7861); protect it with
``--api-auth user:pass``. Routes are plain adapters: they build a core request, call
``ctx.engine`` / ``ctx.store`` / the options store, and turn the result into A1111's JSON.
"""

from webui.api.app import ApiConfig, build_router, create_api_app, mount_api

__all__ = ["ApiConfig", "build_router", "create_api_app", "mount_api"]
