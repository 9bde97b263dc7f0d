*** Settings ***
Documentation     Uses every keyword of rasa_rpa_robot.keywords, then fails on request.
Library           rasa_rpa_robot.keywords

*** Variables ***
${fail}           no

*** Tasks ***
First Step
    Send Chat Message    Looking at 2 invoices    buttons=[{"title": "Stop", "payload": "/cancel_job"}]
    Set Conversation Slot    invoice_count    2

Second Step
    Report Progress    75    Almost there
    Set Job Output    invoice_total    99.5
    IF    '${fail}' == 'yes'    Fail    Invoice INV-7 is locked by another user
