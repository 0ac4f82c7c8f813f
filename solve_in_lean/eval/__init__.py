"""Measuring models: datasets, tasks and metrics, resumable run directories, reports, and
transfer experiments (train on a task mixture, evaluate every task). docs/evaluation.md.

Modules are imported where used (torch and matplotlib only by those that need them):

    datasets      select, usable: a seeded sample, what each task needs (files: solve_in_lean.problems)
    tasks         run_cot, run_lean_solve, run_formalize, run_backtranslate, run_prove, task_metrics
    metrics       wilson_interval, pass_at_k, mcnemar_exact, paired_comparison
    run           select_items, evaluate, load_run: config.json, records.jsonl, metrics.json
    parallel      BatchingGenerator: items in flight on a GPU, their model calls batched
    report        report, compare, plots
    trainingdata  examples_from, mix: one chat format for every task
    finetune      finetune, TrainConfig: LoRA (peft) or full fine-tuning
    transfer      load_config, run_transfer, run_rows: the transfer matrix and its heatmap
"""
