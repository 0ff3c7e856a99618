<?php
return ['session' => ['save' => 'redis', 'redis' => ['host' => 'redis', 'port' => 6379, 'database' => 2, 'timeout' => 2.5, 'password' => "\u{1F600}"]], 'cache' => ['frontend' => ['page_cache' => ['backend' => 'Cm_Cache_Backend_Redis', 'backend_options' => ['server' => 'tls://r', 'port' => '6380']]]]];
