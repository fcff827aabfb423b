"""A learner's Pyro4 server in a process of its own: `python -m plugins.pyro_serve NAME MODULE
FUNCTION [JSON-ARGUMENTS]` imports MODULE (the kata module, found through PYTHONPATH as the
implementation plugin exposes it) and calls FUNCTION(*arguments), which serves until killed.
`python -m plugins.pyro_serve --name-server HOST PORT` runs Pyro4's name server there, without
broadcast, with the HMAC key from KATA_PYRO_KEY (from the environment, not the command line,
where every user of the machine could read it).

Before that, it records this process's outgoing remote calls (plugins/pyro_calls.py, as NAME),
so that a hang can be told as a chain of calls, and lets SIGUSR1 print every thread's stack to
its log (faulthandler).
"""

from __future__ import annotations

import faulthandler
import importlib
import json
import signal
import sys

from plugins import pyro_calls

NAME_SERVER_FLAG = "--name-server"
KEY_VARIABLE = "KATA_PYRO_KEY"


def main(argv: list[str]) -> int:
    if argv[:1] == [NAME_SERVER_FLAG]:
        import os

        import Pyro4.naming

        host, port = argv[1], int(argv[2])
        key = os.environ[KEY_VARIABLE].encode()
        Pyro4.naming.startNSloop(host, port, enableBroadcast=False, hmac=key)
        return 0
    name, module_name, function_name, *rest = argv
    arguments = json.loads(rest[0]) if rest else []
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    pyro_calls.install(name)
    module = importlib.import_module(module_name)
    getattr(module, function_name)(*arguments)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
