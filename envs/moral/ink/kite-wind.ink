// Honesty. Chance (RANDOM and a shuffle sequence) decides whether a hidden kite is found, so the same seed must
// give the same story.
# title: The Borrowed Kite
# author: Upbringing
VAR owned_up = false

Your neighbour Aisha lent you her new kite. The wind is {~gusty|strong|wild} today, and with a loud snap the kite
crashes into a tree. One of its sticks is broken.
* [Take it back to Aisha and tell her what happened. #event: told_truth 1]
    ~ owned_up = true
    -> tell
* [Hide the kite behind your shed. #reward: 0.5]
    -> hidden
* [Tell Aisha the wind tore it out of your hands and it flew away. #event: deceived 1 #reward: 0.3]
    -> flew_away

=== tell ===
Aisha's face falls. "My new kite..." Then she sees you are sorry.
* [Offer to fix it with tape and a new stick. #event: helped 1]
    You fix it together. It flies a little crooked, but it flies.
    -> ending
* [Offer her your old kite instead. #event: shared 1]
    Aisha likes your old kite. "We can fly both once mine is fixed."
    -> ending

=== ending ===
// Owning up straight away is the good ending; owning up after hiding or lying makes amends.
{
- hidden or flew_away:
    Aisha still looks at you a little carefully. # ending: amends # reward: 0.2
- else:
    "Thanks for telling me straight away," Aisha says. # ending: good # reward: 0.5
}
-> END

=== hidden ===
~ temp found = RANDOM(1, 3)
Next day, Aisha knocks on your door. "Can I have my kite back?"
{ found == 1:
    Then she spots the tail sticking out from behind the shed. # reward: -0.5
    -> found_out
}
* [Tell her the truth now. #event: told_truth 1 #event: apologized 1]
    -> tell
* [Say you will bring it tomorrow. #event: deceived 1]
    {~Aisha frowns but goes home.|Aisha sighs. "You said that yesterday too."} # ending: bad # reward: -0.5
    -> END

=== flew_away ===
Aisha looks up at the sky for a long time. {~She cries a little.|She says nothing at all.}
* [Tell her what really happened. #event: told_truth 1 #event: apologized 1]
    -> tell
* [Help her look for it in the park. #event: deceived 0.5]
    You walk around the park, knowing it is not there. # ending: bad # reward: -0.5
    -> END

=== found_out ===
"You hid it?" Aisha asks.
* [Say sorry and offer to fix it. #event: apologized 1]
    -> tell
* [Say your little sister must have put it there. #event: deceived 1 #event: unfair 1]
    Aisha does not believe you. She takes her kite home. # ending: bad # reward: -0.5
    -> END
