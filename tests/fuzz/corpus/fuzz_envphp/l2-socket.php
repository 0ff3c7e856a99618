<?php
return array(
    'MAGE_MODE' => 'developer',
    'db' => array(
        'connection' => array(
            'default' => array(
                'host' => '/var/run/mysqld/mysqld.sock',
                'dbname' => "magento",
                'username' => "magento",
                'password' => "p\x41ss\\word",
                'active' => '1',
            ),
        ),
        'slave_connection' => array(
            'default' => array(
                'host' => 'replica.example:3307',
                'dbname' => 'magento',
            ),
        ),
    ),
    'session' => array('save' => 'files', 'save_path' => '/var/lib/php/sessions'),
    'cache' => array(
        'frontend' => array(
            'default' => array(
                'backend' => '\\Magento\\Framework\\Cache\\Backend\\RemoteSynchronizedCache',
                'backend_options' => array(
                    'remote_backend' => '\\Magento\\Framework\\Cache\\Backend\\Redis',
                    'remote_backend_options' => array(
                        'persistent' => 0,
                        'server' => 'unix:///run/redis/redis.sock',
                        'database' => '0',
                        'port' => '0',
                        'password' => '',
                        'compress_data' => '1',
                    ),
                    'local_backend' => 'Cm_Cache_Backend_File',
                    'local_backend_options' => array('cache_dir' => '/dev/shm/'),
                ),
                'frontend_options' => array('write_control' => false),
            ),
        ),
    ),
    /* queue and search */
    'queue' => array(
        'amqp' => array(
            'host' => 'mq.example', 'port' => '5672', 'user' => 'magento',
            'password' => 'x', 'virtualhost' => '/', 'ssl' => '',
        ),
    ),
    'system' => array('default' => array('catalog' => array('search' => array(
        'engine' => 'opensearch',
        'opensearch_server_hostname' => 'search.example',
        'opensearch_server_port' => '9200',
        'opensearch_index_prefix' => 'magento2',
    )))),
    'cache_types' => array('config' => 1, 'layout' => 1, 'full_page' => 0),
    'downloadable_domains' => array(0 => 'shop.example'),
    'lock' => array('provider' => 'db', 'config' => array('prefix' => NULL)),
    'directories' => array('document_root_is_pub' => TRUE),
    'float' => 1.5e3, 'neg' => -12, 'hex' => 0x1F,
);
