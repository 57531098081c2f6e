"""The app's screens: sign-in, main menu, synchronization."""
