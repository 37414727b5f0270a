"""The scenarios, one module each, numbered as the table shows them: 1 ``create``,
2 ``read`` (both through ``side_by_side``), 3 ``execute``, 4 ``pickup``, 5 ``growth``,
6 ``compute``, 7 ``memory``, 8 ``batch``. Each takes the run (``benchmarks.run.Bench``) and
adds its rows to its report; docs/benchmark.md, "The scenarios", says what each measures."""
