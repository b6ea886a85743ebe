// Promises. A tunnel (-> remember ->) that reminds you of what you said, conditionals on a variable and on
// visited knots, and a fallback choice on the way to the end.
# title: The Blanket Den
# author: Upbringing
VAR promised = false

Ben, your little brother, wants to build a blanket den after school. "Will you help me?"
* ["I promise I'll help you after school."]
    ~ promised = true
    Ben hugs you. "Promise promise?" "Promise promise."
    -> school
* ["Maybe. We'll see."]
    Ben looks unsure, but he nods.
    -> school

=== school ===
At school, Jess asks you to come to her house today to play her new video game.
-> remember ->
* [Go to Jess's house. #reward: 0.3]
    {promised: -> forgot | -> game}
* ["Not today. I'm helping my brother."]
    -> den
* ["Can I bring my brother?"]
    Jess shrugs. "Sure, if he likes games."
    -> den

=== remember ===
{promised: You remember the promise you made to Ben this morning.|You think of Ben and his pile of blankets.}
->->

=== forgot ===
# event: broke_promise 1
You play until the sky turns orange. At home, the blankets lie in a heap on the floor.
-> dinner

=== game ===
You play until the sky turns orange. Ben has built a small den on his own.
-> dinner

=== den ===
{ promised:
    Ben cheers when you come in. "You kept your promise!" # event: kept_promise 1
  - else:
    Ben is surprised to see you. "You came!"
}
You build the best den ever, with a torch and a sign that says KEEP OUT (EXCEPT FRIENDS).
-> dinner

=== dinner ===
At dinner, Ben is {forgot: very quiet|chatting about the den}.
* {forgot} [Say sorry and build the den with him after dinner. #event: apologized 1]
    You carry the blankets together. Ben forgives you before the roof is even on. # ending: amends # reward: 0.2
    -> END
* {forgot} [Say you forgot, which is not quite true. #event: deceived 1]
    Ben stares at his plate. He does not ask you for help again that week. # ending: bad # reward: -0.5
    -> END
* -> 
    {
    - den:
        It was a good day. # ending: good # reward: 0.5
    - else:
        Ben shows you his little den after dinner. It has room for one. # ending: okay
    }
    -> END
