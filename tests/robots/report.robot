*** Settings ***
Documentation     Writes a report in its output folder and names it, and a file
...               outside it, as outputs (the local provider's `files` option).
Library           OperatingSystem
Library           rasa_rpa_robot.keywords

*** Tasks ***
Write A Report
    Create File    ${OUTPUT DIR}/summary.csv    customer,orders\nACME,3\n
    Set Job Output    report_path    ${OUTPUT DIR}/summary.csv
    Set Job Output    relative_path    summary.csv
    Set Job Output    escape_path    ${CURDIR}/report.robot
