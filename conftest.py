"""The plugins that turn pytest into the kata runner (one concern each, see plugins/)."""

pytest_plugins = [
    "plugins.settings",
    "plugins.hypothesis_profiles",
    "plugins.impl",
    "plugins.hardware",
    "plugins.budgets",
    "plugins.busy_loops",
    "plugins.isolation",
    "plugins.cleanup",
    "plugins.progress",
    "plugins.saved_progress",
    "plugins.contract",
    "plugins.known_errors",
    "plugins.crash_guard",
    "plugins.probing",
    "plugins.mpi_runner",
    "plugins.opencl_devices",
    "plugins.redis_broker",
    "plugins.celery_workers",
    "plugins.pyro_names",
    "plugins.verify",
]
