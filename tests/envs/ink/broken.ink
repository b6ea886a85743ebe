# title: Broken
# variable: kindness helped
VAR score = 0
You find a wallet. # event: helped 1
* [Keep it #event: stolen 1]
    -> keep
* [Hand it in #mood: happy]
    -> hand
=== keep ===
You keep it.
* [Spend it] You spend it.
=== hand ===
You hand it in. # ending: good
-> END
=== lost ===
Nobody comes here. # ending: secret
-> END
