*** Settings ***
Documentation     Runs a child that ignores SIGTERM, in a session of its own (the
...               Process library starts every child so): a robot whose process
...               tree reaches outside its process group.
Library           Process

*** Tasks ***
Run A Stubborn Child
    Run Process    sh    -c    trap '' TERM; sleep 300
