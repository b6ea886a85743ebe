// Sharing. Sticky (+) choices that come back while there are strawberries left, a once-only question that
// reappears until it is asked, and a fallback choice that takes the story home when nothing else is open.
# title: The Snack Box
# author: Upbringing
VAR snacks = 3
VAR kindness = 0

You have a box of three strawberries on the park bench. Mo, who sits next to you at school, has no snack today.
He keeps looking at your box.
-> bench

=== bench ===
{snacks > 0: You have {snacks} {snacks == 1: strawberry|strawberries} left.|Your box is empty.}
+ {snacks > 0} [Eat a strawberry yourself. #reward: 0.2]
    ~ snacks -= 1
    It is sweet and cold. Mo looks away.
    -> bench
+ {snacks > 0} [Give Mo a strawberry. #event: shared 1]
    ~ snacks -= 1
    ~ kindness += 1
    Mo grins. "Thanks! These are my favourite."
    -> bench
* [Ask Mo if he is hungry.]
    "A bit," Mo says. "I forgot my lunch at home."
    -> bench
* -> home

=== home ===
Mum calls: time to go home.
{
- kindness >= 2:
    Mo waves all the way to the gate. "Same bench tomorrow?" # ending: good # reward: 0.5
- kindness == 1:
    Mo says thank you again as you leave, and looks at the empty box. # ending: mixed
- else:
    Mo walks home slowly, his tummy rumbling. # ending: bad # reward: -0.5
}
-> END
