// Test fixture: a thread (<- side) adds its choices beside the main ones; an EXTERNAL function with an Ink fallback.
EXTERNAL mood()
# title: Threads
Start. You feel {mood()}.
<- side
* [Main choice #event: helped 1] Main.
  -> END
=== side ===
* [Side choice #event: shared 1] Side.
  -> END
=== function mood() ===
~ return "fine"
