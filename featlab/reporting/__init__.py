"""What featlab shows: the demo on the embedded benchmark (:func:`.demo.demo`) and the report
of every paper's figures and tables measured on feature stores (:func:`.report.report`)."""
