"""How the app meets its terminal: profiles (what it may send) and the serial output layer."""
