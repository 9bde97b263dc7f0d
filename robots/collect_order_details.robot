*** Settings ***
Documentation     Collects the order details of one customer (or ALL) into an Excel report
...               and sends it to the user.
...               The SAP Intelligent RPA tutorial's scenario, as a Robot Framework task.
Library           rasa_rpa_robot.keywords
Library           orders.py

*** Variables ***
${customer}       ALL
${step_delay}     1s

*** Tasks ***
Collect Order Details
    Report Progress    10    Reading the order book
    Sleep    ${step_delay}
    ${orders}=    Read Orders    ${CURDIR}/data/orders.csv    ${customer}
    ${count}=    Get Length    ${orders}
    Report Progress    50    Found ${count} orders for ${customer}
    Sleep    ${step_delay}
    ${report}=    Write Report    ${orders}    ${OUTPUT DIR}    ${customer}
    Report Progress    90    Report written
    Send File    ${report}    title=order report
    Set Job Output    order_count    ${count}
