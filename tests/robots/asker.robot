*** Settings ***
Documentation     Asks the user one question, then reports the answer (or that none came).
Library           rasa_rpa_robot.keywords

*** Variables ***
${question}       What should the report be called?
${choices}        ${EMPTY}
${free_text}      yes
${timeout}        2m

*** Tasks ***
Ask The User
    TRY
        ${answer}=    Ask User    ${question}    choices=${choices}
        ...    free_text=${free_text}    timeout=${timeout}
    EXCEPT    QuestionExpired*    type=glob
        Fail    Nobody answered the question in time
    END
    Send Chat Message    The robot got your answer: ${answer}
    Set Job Output    answer    ${answer}
