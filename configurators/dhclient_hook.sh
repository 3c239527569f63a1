#!/bin/sh
# netreload's dhclient hook ("-sf" script), installed by configurators/dhcp.py
# into <run dir>/dhcp/ and run by dhclient (and by dhcp.py itself for the
# NR_REAPPLY / NR_CLEANUP reasons).  It replaces Debian's
# /sbin/dhclient-script, which would rewrite the real /etc/resolv.conf and
# run the system's hook directories.
#
# Environment (dhclient passes its own variables plus the "-e" ones):
#   reason, interface, new_*/old_*     dhclient's, see dhclient-script(8)
#   NETRELOAD_DHCP_DIR                 state folder (<run dir>/dhcp)
#   NETRELOAD_RESOLV_CONF              resolv.conf path netreload owns
#   NETRELOAD_FAMILY                   4 or 6
#   NETRELOAD_TABLE                    the network's routing table (source
#                                      routing, shared/source_routing.py)
#   NETRELOAD_RULE_PRIORITY            its rules' priority
#   NETRELOAD_MIN_PREFIX               the shortest IPv4 prefix accepted on a
#                                      network without the default route
#
# Files, <base> = $NETRELOAD_DHCP_DIR/<interface>.v<family>:
#   <base>.defroute   present: this network holds the default route (dhcp.py)
#   <base>.state      what this script applied (key=value lines)
#   <base>.bound      present while a lease is applied (dhcp.py waits on it)
#   <base>.dns        nameserver lines, only for the default-route network
#
# Every value coming from the DHCP server is checked against a character
# class before use and only ever passed to `ip` as a separate argument.
#
# Routes: on the default-route network, the router is the main table's
# default route.  On any other network it is source routed, as static
# gateways are: the subnet and a default route via the router in the
# network's own table, and the rules "from <subnet>" / "to <subnet>" looking
# it up.  There, a lease is refused (not applied) when its prefix is shorter
# than NETRELOAD_MIN_PREFIX or its subnet overlaps the default-route
# network's (or holds its gateway): such a lease would steer traffic meant
# for the default route out of this link.

set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022

reason=${reason:-}
interface=${interface:-}
dir=${NETRELOAD_DHCP_DIR:-}
resolv=${NETRELOAD_RESOLV_CONF:-}
family=${NETRELOAD_FAMILY:-}
table=${NETRELOAD_TABLE:-}
prio=${NETRELOAD_RULE_PRIORITY:-}
min_prefix=${NETRELOAD_MIN_PREFIX:-}

log() {
    logger -t netreload-dhcp -- "$*" 2>/dev/null || true
}

case $family in
    4 | 6) ;;
    *) log "bad NETRELOAD_FAMILY"; exit 2 ;;
esac
case $dir in
    /*) ;;
    *) log "bad NETRELOAD_DHCP_DIR"; exit 2 ;;
esac
case $resolv in
    /*) ;;
    *) log "bad NETRELOAD_RESOLV_CONF"; exit 2 ;;
esac
for value in "$table" "$prio" "$min_prefix"; do
    case $value in
        '' | *[!0-9]* | ???????????*)
            log "bad NETRELOAD_TABLE, NETRELOAD_RULE_PRIORITY or NETRELOAD_MIN_PREFIX"; exit 2 ;;
    esac
done
# The same rule as shared.netmodel.names.validate_nic_name: the name becomes
# part of a file name, so no '/', no leading '.' or '-', at most 15 chars.
case $interface in
    '' | [.:-]* | *[!A-Za-z0-9_.:-]* | ????????????????*)
        log "bad interface name"; exit 2 ;;
esac

base="$dir/$interface.v$family"
state="$base.state"
bound="$base.bound"
dns="$base.dns"
flag="$base.defroute"
lock="$dir/resolv.lock"

is_ip4() {
    case $1 in
        '' | *[!0-9.]* | *.*.*.*.* ) return 1 ;;
        *.*.*.*) return 0 ;;
    esac
    return 1
}

is_ip6() {
    case $1 in
        '' | *[!0-9A-Fa-f:.]*) return 1 ;;
        *:*) return 0 ;;
    esac
    return 1
}

is_ip() {
    if [ "$family" = 4 ]; then is_ip4 "$1"; else is_ip6 "$1"; fi
}

is_uint() {
    case $1 in
        '' | *[!0-9]*) return 1 ;;
    esac
    [ "${#1}" -le 10 ]
}

is_domain_list() {
    case $1 in
        '' | *[!A-Za-z0-9.\ _-]*) return 1 ;;
    esac
    return 0
}

# A lifetime for `ip`: 0xffffffff would make the address permanent
# (IFA_F_PERMANENT), which netinfo would then mistake for a static one.
lifetime() {
    if is_uint "$1" && [ "$1" -lt 4294967295 ]; then
        echo "$1"
    else
        echo 4294967294
    fi
}

# The prefix length of a netmask; fails for one that is not contiguous
# (255.0.255.0) or not four octets.
mask2plen() {
    is_ip4 "$1" || return 1
    plen=0
    ended=
    rest=$1.
    while [ -n "$rest" ]; do
        octet=${rest%%.*}
        rest=${rest#*.}
        if [ -n "$ended" ] && [ "$octet" != 0 ]; then return 1; fi
        case $octet in
            255) plen=$((plen + 8)); continue ;;
            254) plen=$((plen + 7)) ;;
            252) plen=$((plen + 6)) ;;
            248) plen=$((plen + 5)) ;;
            240) plen=$((plen + 4)) ;;
            224) plen=$((plen + 3)) ;;
            192) plen=$((plen + 2)) ;;
            128) plen=$((plen + 1)) ;;
            0) ;;
            *) return 1 ;;
        esac
        ended=1
    done
    echo "$plen"
}

ip2int() {  # a.b.c.d (checked by is_ip4) -> integer
    rest=$1.
    n=0
    while [ -n "$rest" ]; do
        octet=${rest%%.*}
        rest=${rest#*.}
        n=$((n * 256 + octet))
    done
    echo "$n"
}

int2ip() {
    echo "$(($1 >> 24 & 255)).$(($1 >> 16 & 255)).$(($1 >> 8 & 255)).$(($1 & 255))"
}

netbits() {  # address plen -> the network's address as an integer
    if [ "$2" -eq 0 ]; then echo 0; return; fi
    echo $(( $(ip2int "$1") & (0xffffffff << (32 - $2) & 0xffffffff) ))
}

subnet_of() {  # address plen -> network/plen
    echo "$(int2ip "$(netbits "$1" "$2")")/$2"
}

overlaps() {  # a1 plen1 a2 plen2: the two subnets share an address
    shorter=$2
    if [ "$4" -lt "$shorter" ]; then shorter=$4; fi
    [ "$(netbits "$1" "$shorter")" = "$(netbits "$3" "$shorter")" ]
}

# Succeeds when the lease addr/plen may be applied on a network without the
# default route (see the header); logs why not otherwise.
plausible_lease() {  # addr plen
    if [ "$2" -lt "$min_prefix" ]; then
        log "$interface: lease $1/$2 refused: prefix shorter than /$min_prefix" \
            "on a network without the default route"
        return 1
    fi
    # The main table's default route: "default via G dev D ..."
    set -- "$1" "$2" $(ip -4 -o route show default table main 2>/dev/null | head -n 1)
    addr=$1
    plen=$2
    shift 2
    gw=
    dev=
    while [ "$#" -ge 2 ]; do
        case $1 in
            via) gw=$2 ;;
            dev) dev=$2 ;;
        esac
        shift
    done
    # none, or through this link (it is just handing the default route over)
    [ -n "$dev" ] && [ "$dev" != "$interface" ] || return 0
    if is_ip4 "$gw" && overlaps "$addr" "$plen" "$gw" 32; then
        log "$interface: lease $addr/$plen refused: it holds the default gateway $gw"
        return 1
    fi
    for cidr in $(ip -4 -o addr show dev "$dev" 2>/dev/null | awk '{print $4}'); do
        other=${cidr%/*}
        other_plen=${cidr#*/}
        is_ip4 "$other" && is_uint "$other_plen" || continue
        if overlaps "$addr" "$plen" "$other" "$other_plen"; then
            log "$interface: lease $addr/$plen refused: it overlaps $cidr of" \
                "the default-route network ($dev)"
            return 1
        fi
    done
    return 0
}

read_state() {
    st_addr=
    st_plen=
    st_router=
    st_ns=
    st_search=
    [ -f "$state" ] || return 0
    while IFS='=' read -r key value; do
        case $key in
            addr) is_ip "$value" && st_addr=$value ;;
            plen) is_uint "$value" && st_plen=$value ;;
            router) is_ip4 "$value" && st_router=$value ;;
            ns) is_ip "$value" && st_ns="$st_ns $value" ;;
            search) is_domain_list "$value" && st_search=$value ;;
        esac
    done < "$state"
}

write_state() {  # addr plen router "ns ..." "search"
    tmp=$(mktemp "$state.XXXXXX") || return 1
    {
        echo "addr=$1"
        echo "plen=$2"
        if [ -n "$3" ]; then echo "router=$3"; fi
        for n in $4; do echo "ns=$n"; done
        if [ -n "$5" ]; then echo "search=$5"; fi
    } > "$tmp" && mv -f "$tmp" "$state"
    rm -f "$tmp"
}

# Rebuild resolv.conf from every default-route network's .dns file.  Only
# called when one of those files appeared, changed or went away, so a host
# whose default-route network is static never has its resolv.conf touched.
update_resolv() {
    (
        flock -w 10 9 || exit 1
        tmp=$(mktemp "$resolv.netreload.XXXXXX") || exit 1
        {
            echo "# Generated by netreload from DHCP leases; do not edit."
            for f in "$dir"/*.v4.dns "$dir"/*.v6.dns; do
                if [ -f "$f" ]; then cat "$f"; fi
            done
        } > "$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$resolv"
        rm -f "$tmp"
    ) 9>"$lock"
}

# Write (or remove, when $1 is empty) this client's .dns file.
set_dns() {  # "ns ..." "search"
    want=
    if [ -n "$1" ] && [ -f "$flag" ]; then
        want=$(
            if [ -n "$2" ]; then echo "search $2"; fi
            for n in $1; do echo "nameserver $n"; done
        )
    fi
    have=
    [ -f "$dns" ] && have=$(cat "$dns")
    [ "$want" = "$have" ] && [ -n "$want" -o ! -f "$dns" ] && return 0
    if [ -n "$want" ]; then
        printf '%s\n' "$want" > "$dns.tmp" && mv -f "$dns.tmp" "$dns"
    else
        rm -f "$dns"
    fi
    update_resolv
}

source_routes() {  # add|del addr plen router
    [ -n "$4" ] || return 0
    subnet=$(subnet_of "$2" "$3")
    # The default route in the table comes last and goes first: the
    # capabilities report the gateway from it.
    if [ "$1" = add ]; then
        for way in from to; do
            # an identical rule is refused (EEXIST): nothing to do then
            ip -4 rule add "$way" "$subnet" lookup "$table" priority "$prio" 2>/dev/null
        done
        ip -4 route replace "$subnet" dev "$interface" src "$2" scope link \
            table "$table" proto dhcp \
            && ip -4 route replace default via "$4" dev "$interface" table "$table" proto dhcp \
            || log "$interface: cannot add routes to table $table"
    else
        ip -4 route del default via "$4" dev "$interface" table "$table" 2>/dev/null
        ip -4 route del "$subnet" dev "$interface" table "$table" 2>/dev/null
        for way in from to; do
            ip -4 rule del "$way" "$subnet" lookup "$table" priority "$prio" 2>/dev/null
        done
    fi
    return 0
}

# The router's routes: the main default route on the default-route network,
# source routing on any other.
set_routes() {  # addr plen router (v4 only; DHCPv6 has no router option)
    [ "$family" = 4 ] || return 0
    if [ -n "$3" ] && [ -f "$flag" ]; then
        source_routes del "$1" "$2" "$3"
        ip -4 route replace default via "$3" dev "$interface" proto dhcp \
            || log "$interface: cannot add default route via $3"
    elif [ -n "$3" ]; then
        ip -4 route del default via "$3" dev "$interface" proto dhcp 2>/dev/null
        source_routes add "$1" "$2" "$3"
    fi
    return 0
}

unset_routes() {  # addr plen router: whichever set_routes installed
    [ "$family" = 4 ] && [ -n "$3" ] || return 0
    ip -4 route del default via "$3" dev "$interface" proto dhcp 2>/dev/null
    source_routes del "$1" "$2" "$3"
}

unapply() {
    read_state
    if [ -n "$st_addr" ] && [ -n "$st_plen" ]; then
        unset_routes "$st_addr" "$st_plen" "$st_router"
    fi
    if [ -n "$st_addr" ] && [ -n "$st_plen" ]; then
        ip -"$family" addr del "$st_addr/$st_plen" dev "$interface" 2>/dev/null
    fi
    rm -f "$bound" "$state"
    set_dns "" ""
}

apply() {  # addr plen valid preferred broadcast router "ns ..." "search"
    read_state
    if [ -n "$st_addr" ] && [ "$st_addr/$st_plen" != "$1/$2" ]; then
        unapply
    elif [ -n "$st_router" ] && [ "$st_router" != "$6" ]; then
        unset_routes "$st_addr" "$st_plen" "$st_router"
    fi
    # Recorded before it is applied: if this script is killed half-way, the
    # cleanup (NR_CLEANUP) still knows what to remove.
    write_state "$1" "$2" "$6" "$7" "$8"
    if [ -n "$5" ]; then
        ip -"$family" addr replace "$1/$2" broadcast "$5" dev "$interface" \
            valid_lft "$3" preferred_lft "$4" || return 1
    else
        ip -"$family" addr replace "$1/$2" dev "$interface" \
            valid_lft "$3" preferred_lft "$4" || return 1
    fi
    set_routes "$1" "$2" "$6"
    set_dns "$7" "$8"
    if [ "$family" = 6 ]; then wait_dad "$1"; fi
    : > "$bound"
}

apply4() {
    addr=${new_ip_address:-}
    is_ip4 "$addr" || { log "$interface: bad address from server"; return 1; }
    plen=$(mask2plen "${new_subnet_mask:-255.255.255.255}") \
        || { log "$interface: bad subnet mask from server"; return 1; }
    if [ ! -f "$flag" ]; then plausible_lease "$addr" "$plen" || return 1; fi
    brd=${new_broadcast_address:-}
    is_ip4 "$brd" || brd=
    router=
    for r in ${new_routers:-}; do
        if is_ip4 "$r"; then router=$r; break; fi
    done
    ns=
    for n in ${new_domain_name_servers:-}; do
        is_ip4 "$n" && ns="$ns $n"
    done
    search=${new_domain_search:-${new_domain_name:-}}
    is_domain_list "$search" || search=
    life=$(lifetime "${new_dhcp_lease_time:-}")
    apply "$addr" "$plen" "$life" "$life" "$brd" "$router" "$ns" "$search"
}

apply6() {
    addr=${new_ip6_address:-}
    is_ip6 "$addr" || { log "$interface: bad address from server"; return 1; }
    ns=
    for n in ${new_dhcp6_name_servers:-}; do
        is_ip6 "$n" && ns="$ns $n"
    done
    search=${new_dhcp6_domain_search:-}
    is_domain_list "$search" || search=
    valid=$(lifetime "${new_max_life:-}")
    preferred=$(lifetime "${new_preferred_life:-}")
    # An IA_NA address is a single address: /128, never the on-link prefix
    # (that one, and the default route, come from router advertisements).
    apply "$addr" 128 "$valid" "$preferred" "" "" "$ns" "$search"
}

# dhclient -6 binds its socket to the link-local address, and runs PREINIT6
# before it daemonizes: wait until a link-local address exists and its
# duplicate address detection is over.  Without carrier there is none, so
# wait as long as our dhclient lives (DhcpClients bounds blocking starts and
# kills the client on stop; then this loop ends too).
wait_link_local() {
    parent=$PPID
    delay=0.1
    n=0
    while kill -0 "$parent" 2>/dev/null; do
        if [ -n "$(ip -6 -o addr show dev "$interface" scope link)" ] \
            && [ -z "$(ip -6 -o addr show dev "$interface" scope link tentative)" ]; then
            return 0
        fi
        sleep "$delay"
        n=$((n + 1))
        [ "$n" -lt 30 ] || delay=1
    done
    return 1
}

# Return once DAD of a new address is over (bounded), so that "bound" means
# the address is usable.
wait_dad() {  # address
    # dhclient passes dad_wait_time=0 unless started with --dad-wait-time.
    tries=${dad_wait_time:-0}
    if ! is_uint "$tries" || [ "$tries" -eq 0 ]; then tries=3; fi
    tries=$((tries * 10))
    parent=$PPID
    while [ "$tries" -gt 0 ] && kill -0 "$parent" 2>/dev/null; do
        if [ -z "$(ip -6 -o addr show dev "$interface" to "$1/128" tentative)" ]; then
            return 0
        fi
        sleep 0.1
        tries=$((tries - 1))
    done
    log "$interface: $1 still tentative"
    return 0
}

# One lease change at a time per client: dhclient's own events and the
# NR_* reasons run by DhcpClients may overlap.  PREINIT6 is left out, it can
# wait for a carrier for a long time.
case $reason in
    PREINIT | PREINIT6 | MEDIUM | NBI) ;;
    *)
        exec 8>"$base.lock"
        flock -w 20 8 || log "$interface: $reason without the lock"
        ;;
esac

case $reason in
    PREINIT)
        ip link set dev "$interface" up
        ;;
    PREINIT6)
        ip link set dev "$interface" up
        wait_link_local || exit 1
        ;;
    BOUND | RENEW | REBIND | REBOOT)
        apply4 || exit 1
        ;;
    BOUND6 | RENEW6 | REBIND6)
        apply6 || exit 1
        ;;
    DEPREF6)
        read_state
        if [ -n "$st_addr" ]; then
            ip -6 addr change "$st_addr/128" dev "$interface" preferred_lft 0 2>/dev/null
        fi
        ;;
    EXPIRE | FAIL | RELEASE | STOP | V6ONLY | EXPIRE6 | RELEASE6 | STOP6 | NR_CLEANUP)
        unapply
        ;;
    TIMEOUT)
        # No server answered and dhclient offers an old lease from the lease
        # file: refuse it, a lease nobody confirmed is not an address we may
        # claim on a shared segment.
        exit 1
        ;;
    NR_REAPPLY)
        # The default-route flag changed while the client runs: add or remove
        # the default route and the nameservers of the current lease.
        read_state
        if [ -n "$st_addr" ] && [ "$family" = 4 ] && [ ! -f "$flag" ] \
            && ! plausible_lease "$st_addr" "$st_plen"; then
            unapply  # a lease kept only because this network held the default route
        elif [ -n "$st_addr" ]; then
            set_routes "$st_addr" "$st_plen" "$st_router"
            set_dns "$st_ns" "$st_search"
        fi
        ;;
    *)
        ;;
esac
exit 0
