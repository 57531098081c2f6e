"""The app's screens: sign-in, main menu, synchronization, register set-up and register."""
