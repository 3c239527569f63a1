"""benchmarks.kernel_perf puts each perf sample of a big request in the kind
of step its kernel stack shows."""

from __future__ import annotations

from benchmarks.kernel_perf import breakdown, classify, samples

SYSCALL = ["netlink_rcv_skb", "netlink_unicast", "netlink_sendmsg", "__sys_sendto",
           "do_syscall_64", "entry_SYSCALL_64_after_hwframe"]  # fmt: skip


def test_the_mark_on_an_up_bridge_is_a_link_set_with_the_ipv6_walk() -> None:
    stack = ["fib6_ifup", "fib6_clean_node", "fib6_walk_continue", "fib6_walk",
             "rt6_sync_up", "addrconf_notify", "notifier_call_chain",
             "netdev_state_change", "do_setlink.isra.0", "rtnl_newlink", *SYSCALL]  # fmt: skip
    assert classify(stack) == "link set (mark/up) [fib6 walk]"


def test_the_up_at_creation_counts_as_creation_not_as_link_set() -> None:
    stack = ["fib6_ifup", "fib6_walk", "rt6_sync_up", "addrconf_notify",
             "__dev_notify_flags", "rtnl_configure_link", "rtnl_newlink", *SYSCALL]  # fmt: skip
    assert classify(stack) == "create: configure (up, notify) [fib6 walk]"


def test_spinning_on_a_mutex_is_contention_whatever_the_request() -> None:
    stack = ["mutex_spin_on_owner", "__mutex_lock.constprop.0", "rtnl_newlink", *SYSCALL]
    assert classify(stack) == "spin (RTNL contention)"


def test_a_stack_without_a_system_call_is_python() -> None:
    assert classify(["_PyEval_EvalFrameDefault", "[unknown]"]) == "user (python)"


def test_samples_are_split_on_perf_scripts_blank_lines() -> None:
    text = [
        "",
        "\tffffffff81 do_setlink.isra.0",
        "\tffffffff82 do_syscall_64",
        "",
        "",
        "\t    7085 _PyEval_EvalFrameDefault",
    ]
    assert list(samples(text)) == [["do_setlink.isra.0", "do_syscall_64"],
                                   ["_PyEval_EvalFrameDefault"]]  # fmt: skip
    assert breakdown(text) == {"link set (mark/up)": 1, "user (python)": 1}
