*** Settings ***
Documentation     The example automation of rpa.yml, written by `rasa-rpa init`.
...               It tells the conversation how far it is (Report Progress) and
...               returns an output (Set Job Output), which reaches the bot as an
...               entity of EXTERNAL_rpa_job_succeeded. Its inputs (rpa.yml,
...               automations.example.inputs) arrive as variables. Try it on its
...               own with `robot robots/example.robot`: outside a job the
...               rasa-rpa keywords only log.
Library           OperatingSystem
Library           rasa_rpa_robot.keywords

*** Variables ***
${name}           World
${step_delay}     1s

*** Tasks ***
Write A Greeting
    Report Progress    10    Getting ready to greet ${name}
    Sleep    ${step_delay}
    ${greeting}=    Set Variable    Hello, ${name}!
    Create File    ${OUTPUT DIR}/greeting.txt    ${greeting}
    Report Progress    90    Wrote the greeting: ${greeting}
    Sleep    ${step_delay}
    Set Job Output    greeting    ${greeting}
