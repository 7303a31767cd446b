raise AssertionError("a disabled extension is never imported")
