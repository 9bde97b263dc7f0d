"""The robot side of rasa-rpa: report a job's progress into the conversation.

Its own distribution, ``rasa-rpa-robot``, so that a robot machine installs
``requests`` and this package and nothing of the server:

* :mod:`rasa_rpa_robot.client`: :class:`RobotClient` signs, sends and retries,
  and asks the user questions (:meth:`RobotClient.ask`);
* :mod:`rasa_rpa_robot.signing`: Standard Webhooks sign and verify (standard
  library only; the server verifies with the same code);
* :mod:`rasa_rpa_robot.keywords` and :mod:`rasa_rpa_robot.listener`: the Robot
  Framework keyword library and listener (extra ``[robotframework]``).
"""

from __future__ import annotations

from rasa_rpa_robot.client import (
    CallbackRefused,
    QuestionExpired,
    RobotClient,
    current_client,
)

__all__ = [
    "CallbackRefused",
    "QuestionExpired",
    "RobotClient",
    "__version__",
    "current_client",
]

__version__ = "0.1.0"
