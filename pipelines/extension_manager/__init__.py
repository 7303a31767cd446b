"""Installing and managing extensions: what is installed (records, read from git), getting and updating
them (git), the A1111 extension index, enabling them (config.json), their requirements (pip under
constraints that keep Atelier's pins), and the gate that refuses all of it to remote users.

The façade is :class:`~pipelines.extension_manager.manager.ExtensionManager`; the other modules have
one job each and no gradio, fastapi or webui. Loading extensions (their hooks) is not here: the loader
takes :func:`~pipelines.extension_manager.state.disabled_extensions` to know what to skip.
"""
