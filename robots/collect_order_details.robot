*** Settings ***
Documentation     Collects the order details of one customer (or ALL) into an Excel report
...               and sends it to the user.
...               The SAP Intelligent RPA tutorial's scenario, as a Robot Framework task.
...               When the name fits several customers, the robot asks the user which.
Library           rasa_rpa_robot.keywords
Library           orders.py

*** Variables ***
${customer}             ALL
${step_delay}           1s
${question_timeout}     5m
${book}                 ${CURDIR}/data/orders.csv

*** Tasks ***
Collect Order Details
    Report Progress    10    Reading the order book
    Sleep    ${step_delay}
    ${chosen}=    Choose Customer    ${customer}
    ${orders}=    Read Orders    ${book}    ${chosen}
    ${count}=    Get Length    ${orders}
    Report Progress    50    Found ${count} orders for ${chosen}
    Sleep    ${step_delay}
    ${report}=    Write Report    ${orders}    ${OUTPUT DIR}    ${chosen}
    Report Progress    90    Report written
    Send File    ${report}    title=order report
    Set Job Output    order_count    ${count}

*** Keywords ***
Choose Customer
    [Documentation]    The customer meant by ${requested}; asks the user when it fits several.
    [Arguments]    ${requested}
    ${matches}=    Matching Customers    ${book}    ${requested}
    IF    len($matches) == 1    RETURN    ${matches}[0]
    TRY
        ${chosen}=    Ask User    Which customer did you mean?
        ...    choices=${matches}    timeout=${question_timeout}
    EXCEPT    QuestionExpired*    type=glob
        Fail    Nobody chose which customer '${requested}' meant, so I made no report
    END
    RETURN    ${chosen}
