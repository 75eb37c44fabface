"""The review screen: annotators scrub recorded attempts and label them by keyboard."""
