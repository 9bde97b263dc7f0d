*** Settings ***
Documentation     Waits, reporting nothing but its start: a job that stays running.
Library           rasa_rpa_robot.keywords

*** Variables ***
${duration}       60s

*** Tasks ***
Wait For A While
    Sleep    ${duration}
