from configurators.base import Configurator
from configurators.registry import Entry, register


class LogConfigurator(Configurator):
    name = switch = "log"

    def __init__(self, config, peers):
        self.done = []

    def add_network(self, network, lower_mtu, blocking_dhcp):
        self.done.append(f"add {network.name} on {network.lower_name}")

    def remove_network(self, network, keep_bond=True):
        self.done.append(f"remove {network.name}")

    def create_bond(self, bond):
        self.done.append(f"bond {bond.name} of {','.join(bond.slaves)}")

    def modify_bond(self, bond, old):
        self.create_bond(bond)

    def delete_bond(self, bond):
        self.done.append(f"unbond {bond.name}")

    def set_mtu(self, device, mtu):
        self.done.append(f"mtu {device} {mtu}")


register(Entry("log", LogConfigurator, switch="log"))
