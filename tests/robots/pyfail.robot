*** Settings ***
Documentation     Fails the ways a careless robot does: on a Python exception, or
...               with its own credentials in the message (mode=exception|token|chat).
Library           OperatingSystem
Library           rasa_rpa_robot.keywords

*** Variables ***
${mode}           exception

*** Tasks ***
Fail Carelessly
    IF    '${mode}' == 'exception'
        Get File    /nonexistent/secret/dir/orders.csv
    ELSE IF    '${mode}' == 'token'
        Fail    Token is %{RASA_RPA_TOKEN} and secret is %{RASA_RPA_SIGNING_SECRET}
    ELSE
        Send Chat Message    Token %{RASA_RPA_TOKEN} at https://erp.example/orders?page=2
        Set Job Output    secret    %{RASA_RPA_SIGNING_SECRET}
    END
