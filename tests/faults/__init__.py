"""Fault tests of issue 7: where each fault is covered (none may lose data or leave the
app unusable). Tests in this folder are named with ``faults/``; the others already
existed and are not repeated here.

Server drops the connection mid-reply
    openai/test_errors.py: test_connection_dropped_mid_stream_keeps_the_partial_reply
    (between events; the next request carries the kept text),
    test_drop_before_any_token_is_retried, test_stream_ending_without_done_is_incomplete;
    faults/test_stream_faults.py: test_a_cut_in_the_middle_of_a_line_keeps_what_was_complete
    (chunked and close-delimited bodies), test_a_cut_in_the_middle_of_a_tool_call_runs_nothing;
    fog/test_platform.py: test_node_errors_before_output_fail_over_but_not_after,
    fog/test_discovery.py: test_two_nodes_one_killed_the_next_request_goes_to_the_other.

Bursts of 429 and 500 (bounded retries honouring Retry-After, no duplicated output)
    openai/test_errors.py: test_rate_limit_is_retried_honouring_retry_after,
    test_retry_after_in_seconds_is_read (a wait over the limit ends the request),
    test_rate_limit_retries_are_bounded, test_server_errors_are_retried_before_any_token,
    test_quota_exhausted_is_not_retried;
    faults/test_stream_faults.py: test_a_burst_of_429_and_5xx_then_a_reply_yields_it_once
    (429, 500, a drop, 503 with an HTTP-date Retry-After: one reply, once),
    test_an_endless_5xx_burst_on_the_model_list_ends_with_a_clear_error,
    test_ask_prints_a_retried_reply_once_and_a_lasting_burst_as_an_error (`spezichat ask`).

A server that accepts and never answers (timeout, cancel)
    openai/test_errors.py: test_a_server_that_never_answers_times_out,
    test_a_stall_mid_reply_times_out_as_incomplete,
    test_cancel_while_the_server_never_answers, test_cancel_mid_stream_keeps_the_text_so_far;
    faults/test_stream_faults.py: test_the_configured_timeout_fires_with_a_clear_error and
    test_cancel_works_while_the_server_never_answers (a listener that never accepts, during
    the model-access check and during the chat request).

Malformed SSE lines and invalid JSON chunks
    faults/test_stream_faults.py: test_sse_lines_the_spec_ignores_do_not_disturb_the_reply,
    test_invalid_json_keeps_the_partial_reply_and_names_the_data,
    test_invalid_json_before_any_text_is_reported_not_retried,
    test_json_of_the_wrong_shape_is_a_format_error_naming_it,
    test_an_event_stream_holding_no_events_is_a_format_error,
    test_invalid_utf8_is_replaced_not_fatal;
    openai/test_errors.py: test_error_event_inside_the_stream.

kill -9 of a running chat, then restart
    store/test_processes.py: test_kill_9_while_streaming_keeps_the_question_and_the_saved_part,
    test_concurrent_processes_write_without_corruption; the app itself:
    tui/test_faults.py: test_kill_9_mid_reply_then_restart_keeps_the_question_and_the_partial_reply
    (the real app under a pseudo-terminal). Downloads: local/test_download.py:
    test_killed_process_resumes_after_restart.

A corrupted database file
    store/test_store.py: test_garbage_file_is_moved_aside_and_a_fresh_store_works,
    test_damaged_pages_are_detected_and_moved_aside,
    test_newer_schema_is_refused_and_left_alone,
    test_unreadable_location_is_a_clear_error_not_a_recovery;
    store/test_history_cli.py: test_damaged_database_is_reported_then_history_works;
    in the app: tui/test_faults.py: test_the_real_app_starts_on_a_damaged_database_and_says_so,
    test_damaged_database_is_reported_kept_aside_and_replaced.

Disk full during a download
    faults/test_disk_full.py: test_a_small_disk_filling_up_midway (a real tmpfs, ENOSPC),
    test_a_file_larger_than_the_file_system_allows (RLIMIT_FSIZE, EFBIG, through
    `spezichat download`), test_enospc_from_a_write_hook (every machine);
    local/test_download.py: test_not_enough_disk_space (checked before starting),
    test_checksum_mismatch_removes_the_file.

A 1 MB paste into the prompt; the terminal resized to 40x12
    tui/test_faults.py: test_a_1_mb_paste_is_sent_whole_and_the_app_stays_usable,
    test_resizing_to_40x12_while_a_long_reply_streams_loses_nothing.

History integrity (issue 13): a full disk, a locked database, two windows, damaged rows
    tui/test_store_faults.py:
    test_a_full_disk_keeps_the_exchange_and_saves_it_later_in_order (a real tmpfs, ENOSPC),
    test_a_locked_history_never_holds_up_the_keys_and_keeps_the_order (another process
    holds BEGIN IMMEDIATE), test_two_windows_on_one_conversation_keep_their_turns_apart
    (two apps, one file: a fork, and the other window's list learns of it),
    test_the_app_starts_on_damaged_rows_and_names_the_conversation;
    store/test_integrity.py: the same at the store (damaged rows, `history list/show`,
    two writers, the lock, a failed write going first with the next one).

Limits (issue 13): nothing hangs, nothing eats memory
    faults/test_limits.py: test_a_reply_that_only_keeps_alive_is_stopped_and_kept
    (keep-alive comments or one byte at a time forever, streamed or not: the idle
    timeout, [openai] idle_timeout, stops it and keeps the text),
    test_a_fog_node_that_only_keeps_alive_is_stopped ([fog] idle_timeout);
    test_a_300_mb_line_ends_the_reply_with_bounded_memory,
    test_an_endless_event_of_short_lines_ends_with_bounded_memory,
    test_a_huge_error_body_is_read_only_in_part (200 MB and a gzip bomb),
    test_a_gzip_bomb_in_the_event_stream_ends_with_bounded_memory,
    test_a_gzip_bomb_as_a_whole_answer_ends_with_bounded_memory (the client's peak memory
    measured in a child process), test_compression_is_undone_and_damage_is_a_format_error;
    test_a_hanging_token_command_times_out_and_is_killed ([fog] token_timeout),
    test_a_cancelled_token_command_is_killed_with_its_children,
    test_a_hanging_token_command_is_not_reported_as_a_slow_node (the process group is gone).

Functions that are stopped or never return (issue 13)
    tui/test_tool_cancel.py:
    test_escape_while_a_function_runs_records_it_cancelled_and_the_chat_goes_on,
    test_a_function_past_its_time_limit_is_shown_failed_and_the_model_told,
    test_a_stored_conversation_with_a_call_but_no_result_can_continue,
    test_quitting_the_real_app_while_a_function_never_returns_ends_the_process;
    core/test_tool_limits.py (cancelled results, [general] tool_timeout, requests repaired
    for calls left without results, the test server answering 400 like the API);
    core/test_ask_interrupt.py: test_one_ctrl_c_at_the_approval_question_exits_130.

Signals, keys in one read, no terminal (issue 13)
    tui/test_signals.py: SIGTERM, SIGHUP and a hung-up pty mid-reply (the reply saved as
    stopped, the terminal restored); tui/test_key_order.py: text and Enter, or Ctrl+J, in
    one read keep their order; core/test_no_terminal.py: cron, a pipe, a file: exit 2.

`ask` input and output (issue 13)
    core/test_ask_io.py: /dev/full, a closed stdout or stderr, a reader that goes away,
    non-UTF-8 input, piped text beside a prompt, --max-time.

Settings of the wrong type, and the user's file kept (issue 13)
    core/test_settings_file.py, tui/test_settings_warnings.py.

A reply with a 200,000-line code block (issue 13)
    tui/test_large_blocks.py:
    test_a_streamed_reply_with_a_huge_code_block_keeps_the_app_responsive,
    test_a_stored_reply_with_a_huge_code_block_reopens_the_same_way (widgets and rows
    bounded by the screen, not the block); store/test_integrity.py:
    test_a_long_reply_is_saved_on_the_writer_thread_a_short_one_at_once.
"""
