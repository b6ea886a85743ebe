// Test fixture: a choice tag outside brackets (echoed on the line that repeats the choice text, counted once),
// tags inside brackets (the choice's only), a line tag after a choice, and a dynamic tag built from a variable.
# title: Tags
VAR coins = 0
A coin lies on the path.
* Pick it up #event: stole 1
    ~ coins += 1
    -> next
* [Leave it #reward: 0.1]
    -> next
=== next ===
Later, you pass the school. # reward: {coins}
* [Give the coin to the teacher. #event: helped 1] You hand it over. #reward: 0.25
    -> END
