"""What featlab shows: the demo on the embedded benchmark (:func:`.demo.demo`)."""
