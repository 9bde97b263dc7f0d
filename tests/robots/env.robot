*** Settings ***
Documentation     Reports what it can see of the action server's environment.
Library           rasa_rpa_robot.keywords

*** Tasks ***
Look Around
    Set Job Output    rasa_token    %{RASA_TOKEN=absent}
    Set Job Output    has_path    %{PATH=absent}
    Set Job Output    passed    %{ROBOT_EXTRA=absent}
