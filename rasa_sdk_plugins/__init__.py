"""rasa-sdk loads plugins from this package name; this bot's one plugin is rasa-rpa."""


def init_hooks(manager):  # noqa: D103 - rasa-sdk's plugin entry point
    import rasa_rpa.plugin

    manager.register(rasa_rpa.plugin)
