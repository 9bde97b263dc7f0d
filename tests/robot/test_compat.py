"""``rasa_rpa.robot`` stays a working alias of the rasa-rpa-robot distribution.

Robots written before the split say ``Library    rasa_rpa.robot.keywords`` and
``--listener rasa_rpa.robot.listener.JobListener``; they must keep working.
"""

from __future__ import annotations

from robot.libdoc import LibraryDocumentation

import rasa_rpa.robot
import rasa_rpa_robot
from rasa_rpa.robot import client, listener
from rasa_rpa_robot import client as new_client, listener as new_listener


def keyword_names(library: str) -> list[str]:
    return sorted(kw.name for kw in LibraryDocumentation(library).keywords)


def test_old_keyword_library_offers_the_same_keywords():
    names = keyword_names("rasa_rpa_robot.keywords")
    assert "Report Progress" in names
    assert keyword_names("rasa_rpa.robot.keywords") == names


def test_old_names_are_the_new_objects():
    assert listener.JobListener is new_listener.JobListener
    assert client.RobotClient is new_client.RobotClient
    assert client.ENV_EVENTS_URL == new_client.ENV_EVENTS_URL
    # One process-wide client: old and new imports share it.
    assert client.current_client is new_client.current_client
    assert rasa_rpa.robot.RobotClient is rasa_rpa_robot.RobotClient
