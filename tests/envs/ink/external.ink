// Test fixture: an EXTERNAL function with no Ink fallback, which Upbringing cannot run.
EXTERNAL ping()
Start. {ping()}
-> END
